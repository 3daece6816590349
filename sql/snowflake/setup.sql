-- =============================================================================================
-- sql/snowflake/setup.sql: prepare a Snowflake account for the spotify-assets pipeline.
--
-- Creates: a role with the least privilege the pipeline needs, a service user that signs in
-- with a key pair (no password), an XSMALL warehouse that suspends after a minute, the
-- database, and its two schemas: ANALYTICS (the six normalized tables and the analytics views,
-- created by the pipeline itself) and RAW (used only by the optional Snowpipe route,
-- sql/snowflake/snowpipe.sql). Nothing in it is account-wide for the pipeline's role.
--
-- Run it whole, as a user who holds USERADMIN, SYSADMIN and SECURITYADMIN (an account
-- administrator does), in a worksheet or with SnowSQL:  snowsql -f sql/snowflake/setup.sql
-- Each part switches to the role that owns that kind of object, so that nothing ends up
-- owned by ACCOUNTADMIN:
--   1. USERADMIN      creates the role and the user (it holds CREATE ROLE and CREATE USER);
--   2. SYSADMIN       creates the warehouse, the database and the schemas, and owns them;
--   3. SECURITYADMIN  grants (it holds MANAGE GRANTS).
-- Running it again changes nothing that is already right (IF NOT EXISTS everywhere; grants
-- that exist are no-ops; ALTER USER re-applies the user's settings).
--
-- ---------------------------------------------------------------------------------------------
-- The key pair (on the machine that will run the pipeline; the private key never leaves it):
--
--   openssl genrsa 2048 | openssl pkcs8 -topk8 -inform PEM -out rsa_key.p8 -nocrypt
--   openssl rsa -in rsa_key.p8 -pubout -out rsa_key.pub
--   grep -v -- '-----' rsa_key.pub | tr -d '\n'      # paste this in place of <RSA_PUBLIC_KEY>
--
-- For an encrypted private key use `openssl pkcs8 -topk8 -v2 aes-256-cbc ...` without
-- -nocrypt, and give the pipeline its passphrase in SNOWFLAKE_PRIVATE_KEY_PASSWORD.
-- To check that Snowflake holds the right key, compare RSA_PUBLIC_KEY_FP in
-- `DESC USER SPOTIFY_PIPELINE_SVC` with
--   openssl rsa -pubin -in rsa_key.pub -outform DER | openssl dgst -sha256 -binary | openssl enc -base64
-- To rotate: set RSA_PUBLIC_KEY_2 to the new key, switch the pipeline over, unset the old one.
--
-- The pipeline then needs (with the names below; SPOTIFY_ASSETS_DEPLOYMENT=production):
--   SNOWFLAKE_ACCOUNT=<orgname>-<account_name>     # the account identifier
--   SNOWFLAKE_USER=SPOTIFY_PIPELINE_SVC            # $service_user
--   SNOWFLAKE_PRIVATE_KEY_PATH=/path/to/rsa_key.p8
--   SNOWFLAKE_DATABASE=SPOTIFY                     # $db
--   SNOWFLAKE_WAREHOUSE=SPOTIFY_WH                 # $wh
--   SNOWFLAKE_ROLE=SPOTIFY_PIPELINE                # $pipeline_role
--   (SNOWFLAKE_SCHEMA defaults to ANALYTICS, the schema created here.)
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- EDIT HERE, and only here: the names of everything this script creates.
-- (Plain identifiers; Snowflake stores them upper-case.)
-- ---------------------------------------------------------------------------------------------
SET db = 'SPOTIFY';                         -- database                    -> SNOWFLAKE_DATABASE
SET wh = 'SPOTIFY_WH';                      -- warehouse                   -> SNOWFLAKE_WAREHOUSE
SET pipeline_role = 'SPOTIFY_PIPELINE';     -- the pipeline's role         -> SNOWFLAKE_ROLE
SET service_user = 'SPOTIFY_PIPELINE_SVC';  -- the pipeline's service user -> SNOWFLAKE_USER

-- Derived from the names above: the two schemas, fully qualified.
SET analytics_schema = $db || '.ANALYTICS';
SET raw_schema = $db || '.RAW';


-- ---------------------------------------------------------------------------------------------
-- 1. USERADMIN: the role and the service user.
-- ---------------------------------------------------------------------------------------------
USE ROLE USERADMIN;

CREATE ROLE IF NOT EXISTS IDENTIFIER($pipeline_role)
    COMMENT = 'spotify-assets pipeline: writes the normalized tables and views in ANALYTICS';

-- TYPE = SERVICE: no password, no MFA prompt, no Snowsight sign-in; key-pair auth only.
CREATE USER IF NOT EXISTS IDENTIFIER($service_user)
    TYPE = SERVICE
    COMMENT = 'spotify-assets pipeline (Dagster); key-pair auth';

-- Applied on every run, so a re-run with other names or a new key converges (CREATE USER IF
-- NOT EXISTS leaves an existing user untouched). The key is a literal: it is longer than the
-- 256 bytes a session variable may hold. Paste the public key body, without the BEGIN/END
-- lines; Snowflake rejects the placeholder itself, so a forgotten edit fails loudly.
ALTER USER IDENTIFIER($service_user) SET
    TYPE = SERVICE
    DEFAULT_ROLE = $pipeline_role
    DEFAULT_WAREHOUSE = $wh
    DEFAULT_NAMESPACE = $analytics_schema
    RSA_PUBLIC_KEY = '<RSA_PUBLIC_KEY>';


-- ---------------------------------------------------------------------------------------------
-- 2. SYSADMIN: warehouse, database, schemas (SYSADMIN owns them).
-- ---------------------------------------------------------------------------------------------
USE ROLE SYSADMIN;

-- XSMALL is plenty: a window is a few thousand rows. It resumes on the first query and
-- suspends after 60 s idle, so it costs a minute or two per 8-hour window.
CREATE WAREHOUSE IF NOT EXISTS IDENTIFIER($wh) WITH
    WAREHOUSE_SIZE = XSMALL
    AUTO_SUSPEND = 60
    AUTO_RESUME = TRUE
    INITIALLY_SUSPENDED = TRUE
    COMMENT = 'spotify-assets pipeline';

CREATE DATABASE IF NOT EXISTS IDENTIFIER($db)
    COMMENT = 'spotify-assets: Spotify playlist snapshots';

USE DATABASE IDENTIFIER($db);

CREATE SCHEMA IF NOT EXISTS ANALYTICS
    COMMENT = 'the six normalized tables (one 8-hour window per load) and the analytics views';

CREATE SCHEMA IF NOT EXISTS RAW
    COMMENT = 'optional Snowpipe route (sql/snowflake/snowpipe.sql): raw JSON documents';


-- ---------------------------------------------------------------------------------------------
-- 3. SECURITYADMIN: grants. Nothing account-wide; nothing on other databases.
-- ---------------------------------------------------------------------------------------------
USE ROLE SECURITYADMIN;

-- The role hierarchy: SYSADMIN (and so ACCOUNTADMIN) can manage what the pipeline creates.
GRANT ROLE IDENTIFIER($pipeline_role) TO ROLE SYSADMIN;
GRANT ROLE IDENTIFIER($pipeline_role) TO USER IDENTIFIER($service_user);

GRANT USAGE ON WAREHOUSE IDENTIFIER($wh) TO ROLE IDENTIFIER($pipeline_role);
GRANT USAGE ON DATABASE IDENTIFIER($db) TO ROLE IDENTIFIER($pipeline_role);
GRANT USAGE ON SCHEMA IDENTIFIER($analytics_schema) TO ROLE IDENTIFIER($pipeline_role);
GRANT USAGE ON SCHEMA IDENTIFIER($raw_schema) TO ROLE IDENTIFIER($pipeline_role);

-- The pipeline creates (and so owns) its tables, its per-load temporary tables and its views
-- in ANALYTICS. CREATE STAGE: write_pandas, its bulk load, PUTs each frame into a temporary
-- stage it creates in the schema; without it every load fails.
GRANT CREATE TABLE, CREATE VIEW, CREATE STAGE ON SCHEMA IDENTIFIER($analytics_schema) TO ROLE IDENTIFIER($pipeline_role);

-- No CREATE SCHEMA: the loader creates ANALYTICS only if SHOW SCHEMAS does not list it, and
-- this script has created it. (Earlier setups granted it; to take it back:
--   REVOKE CREATE SCHEMA ON DATABASE IDENTIFIER($db) FROM ROLE IDENTIFIER($pipeline_role); )


-- ---------------------------------------------------------------------------------------------
-- Check (optional): what the role may do, and the user's settings.
--   SHOW GRANTS TO ROLE SPOTIFY_PIPELINE;
--   DESC USER SPOTIFY_PIPELINE_SVC;
-- ---------------------------------------------------------------------------------------------
