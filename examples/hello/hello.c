/* Built statically in a build stage and copied into an empty image: the seed's
 * "multi-stage builds to minimise their size". */
#include <stdio.h>

int main(void)
{
    puts("hello from lkpkg");
    return 0;
}
