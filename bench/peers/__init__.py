"""The same work on Prefect 3 and on flowkeeper, in one run (`make bench-peers`)."""
