"""Fault tests: the pipeline under the faults its users will meet (kills, corrupt files,
re-exports, failing servers), with rows counted before and after."""
