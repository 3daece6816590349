-- One-time setup of the MySQL warehouse (RDS MySQL 8, Aurora MySQL 3, MariaDB 10.6+): the
-- database, the pipeline's user and a read-only user for BI tools (QuickSight, Tableau).
-- Run it as an administrator (on RDS: the master user), after replacing both passwords:
--
--   mysql --host=<endpoint> --user=admin --password --ssl-ca=global-bundle.pem < sql/mysql/setup.sql
--
-- Then set SPOTIFY_ASSETS_WAREHOUSE=mysql, SPOTIFY_ASSETS_MYSQL_HOST, SPOTIFY_ASSETS_MYSQL_USER=spotify_pipeline,
-- SPOTIFY_ASSETS_MYSQL_PASSWORD and SPOTIFY_ASSETS_MYSQL_SSL_CA (see docs/mysql.md).
--
-- utf8mb4 keeps every name (Arabic, Cyrillic, CJK, emoji); the binary collation compares,
-- groups and sorts strings by code point, as DuckDB and Snowflake do. The pipeline creates
-- its tables and views itself (with their indexes) on the first run.

CREATE DATABASE IF NOT EXISTS spotify CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;

-- The pipeline: the tables and views of this one database, nothing else. LOAD DATA LOCAL
-- INFILE (how windows are loaded) needs no FILE privilege; the server must allow it (the
-- system variable local_infile=1; on RDS, in the DB parameter group). Where it does not,
-- the pipeline loads by multi-row INSERT instead (slower; see docs/mysql.md).
CREATE USER IF NOT EXISTS 'spotify_pipeline'@'%' IDENTIFIED BY 'change-me-pipeline' REQUIRE SSL;
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX, CREATE VIEW, SHOW VIEW,
    CREATE TEMPORARY TABLES
    ON spotify.* TO 'spotify_pipeline'@'%';

-- BI tools: read the tables and views, change nothing.
CREATE USER IF NOT EXISTS 'spotify_bi'@'%' IDENTIFIED BY 'change-me-bi' REQUIRE SSL;
GRANT SELECT, SHOW VIEW ON spotify.* TO 'spotify_bi'@'%';
