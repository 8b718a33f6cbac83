# The Temporal dev server (the pinned Temporal CLI, static: CGO_ENABLED=0)
# FROM scratch, for docker-compose.local.yml: nothing is pulled.
# `make temporal-image` builds it from bin/temporal.
FROM scratch
COPY temporal /usr/local/bin/temporal
# The dev server keeps its SQLite state here (a volume in the compose file)
# and may write temporary files.
WORKDIR /tmp
WORKDIR /var/lib/temporal
# Read by the static server for its telemetry resource (there is no
# /etc/passwd here).
ENV USER=temporal HOME=/var/lib/temporal
ENTRYPOINT ["/usr/local/bin/temporal"]
CMD ["server", "start-dev", "--ip", "0.0.0.0", "--db-filename", "/var/lib/temporal/temporal.db"]
