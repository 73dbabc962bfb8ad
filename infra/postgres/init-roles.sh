#!/bin/sh
# Roles for haul, made once when the postgres image initialises an empty data
# directory (compose mounts this file in /docker-entrypoint-initdb.d/). It runs as the
# image's superuser ($POSTGRES_USER), which haul itself never uses:
#
#   haul_owner  owns the database and its schema; `haul migrate` runs as it
#   haul_app    what the API, the workers and the scheduler connect as: it reads and
#               writes rows (and LISTENs), and cannot create, alter or drop anything
#
# Neither is a superuser, and neither may create databases or roles. The passwords
# come from HAUL_OWNER_PASSWORD and HAUL_APP_PASSWORD (see compose.yaml; change them
# there and in the HAUL_DATABASE_URL values for anything but a local trial).
set -eu

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set db="$POSTGRES_DB" \
    --set owner_password="$HAUL_OWNER_PASSWORD" \
    --set app_password="$HAUL_APP_PASSWORD" <<'SQL'
CREATE ROLE haul_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'owner_password';
CREATE ROLE haul_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'app_password';

ALTER DATABASE :"db" OWNER TO haul_owner;
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO haul_app;

ALTER SCHEMA public OWNER TO haul_owner;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO haul_app;

-- Every table and sequence the migrations (run as haul_owner) create: rows only.
ALTER DEFAULT PRIVILEGES FOR ROLE haul_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO haul_app;
ALTER DEFAULT PRIVILEGES FOR ROLE haul_owner IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO haul_app;
ALTER DEFAULT PRIVILEGES FOR ROLE haul_owner IN SCHEMA public
    GRANT EXECUTE ON FUNCTIONS TO haul_app;
SQL
