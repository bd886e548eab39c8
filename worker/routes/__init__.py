"""The reserved `/__tollgate/` routes: decision service, health, metrics, admin."""
