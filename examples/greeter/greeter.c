/* A service whose LinuxKit runtime config (build.yml `config:`) travels with the image as the
 * org.mobyproject.config label. It prints its greeting and the argv LinuxKit gives it. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    const char *greeting = getenv("GREETING");
    printf("%s\n", greeting ? greeting : "greetings from lkpkg");
    for (int i = 1; i < argc; i++)
        printf("arg: %s\n", argv[i]);
    return 0;
}
