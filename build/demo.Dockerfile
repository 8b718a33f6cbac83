# The example MicroService in an image of its own, as a service ships it
# (`image:` in the catalog of the docker kind): the static demo (built with
# CGO_ENABLED=0) FROM scratch, its ENTRYPOINT listening on every address of
# the container, on the port msm leases ($PORT, which the agent sets). It
# holds no msm: the node copies the agent in. `make demo-image` builds it.
FROM scratch
COPY demo /app/demo
ENTRYPOINT ["/app/demo", "--listen=0.0.0.0"]
