/* server/main.c — the strata binary: everything is in the command line (cli.c). */
#include "server.h"

int main(int argc, char **argv)
{
    return srv_cli_main(argc, argv);
}
