#!/bin/sh
# Run by the postgres image once, when its data volume is first initialised: one role and
# one database for each client, so neither the gateway nor NBXplorer holds the superuser.
# The entrypoint sources this file when it is not executable, so it sets no shell options.
: "${ARKRELAY_DB_PASSWORD:?ARKRELAY_DB_PASSWORD is not set}"
: "${NBXPLORER_DB_PASSWORD:?NBXPLORER_DB_PASSWORD is not set}"

# psql substitutes :'name' with the variable as a quoted literal, so a password needs no
# escaping here.
psql --set=ON_ERROR_STOP=1 --username="$POSTGRES_USER" --dbname=postgres \
    --set=arkrelay_password="$ARKRELAY_DB_PASSWORD" \
    --set=nbxplorer_password="$NBXPLORER_DB_PASSWORD" <<'SQL'
CREATE ROLE arkrelay LOGIN PASSWORD :'arkrelay_password';
CREATE DATABASE arkrelay OWNER arkrelay;
CREATE ROLE nbxplorer LOGIN PASSWORD :'nbxplorer_password';
CREATE DATABASE nbxplorer OWNER nbxplorer;
SQL
