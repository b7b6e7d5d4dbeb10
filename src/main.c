/* krunkit entry point: parse -> config -> vm -> run -> exit status. */
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "krunkit: not implemented yet\n");
    return 1;
}
