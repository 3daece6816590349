"""The MySQL warehouse tests' server (support/mariadb.py): one per test session."""

from spotify_assets_tests.support.mariadb import mysql_server  # noqa: F401
