/* storage/migrations.h — private: the table of embedded migrations.
 * Generated into build/generated/migrations_table.c from migrations/NNNN_name.sql. */
#ifndef STRATA_MIGRATIONS_H
#define STRATA_MIGRATIONS_H
#include <stddef.h>
struct st_migration {
    const char *name; /* "0001_init" — file name without .sql; order = array order */
    const char *sql;  /* the whole file, NUL-terminated */
};
extern const struct st_migration st_migrations[];
extern const size_t st_nmigrations;
#endif
