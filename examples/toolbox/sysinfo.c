/* Reads what the base package put in the image, so running it shows which base it got. */
#include <stdio.h>
#include <string.h>

static void show(const char *path, const char *prefix)
{
    char line[256];
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        printf("%s: missing\n", path);
        return;
    }
    while (fgets(line, sizeof line, file) != NULL)
        if (prefix == NULL || strncmp(line, prefix, strlen(prefix)) == 0)
            fputs(line, stdout);
    fclose(file);
}

int main(void)
{
    show("/etc/os-release", "PRETTY_NAME=");
    show("/etc/examples/arch", NULL);
    return 0;
}
