"""RQ jobs: thin functions that take ids, reload, check state, call a service, commit."""
