# btclient in a FROM scratch image: one static binary, no shell, non-root.
#
# No base image can be pulled here, so the binary is built on the host and the
# few files a scratch image needs are staged beside it; the build context is
# the repository root, filtered by .dockerignore down to exactly those files:
#
#   make build                       # CGO_ENABLED=0 static bin/btclient
#   scripts/swarm-e2e.sh image       # stages bin/docker/ and runs docker build
#
# or by hand, after `make build`:
#   mkdir -p bin/docker/etc bin/docker/data
#   echo 'btclient:x:10001:10001:btclient:/data:/btclient' > bin/docker/etc/passwd
#   echo 'btclient:x:10001:' > bin/docker/etc/group
#   docker build -t btclient:latest .
#
# Every flag is an environment variable (BTCLIENT_<FLAG>); the defaults below
# make `docker run btclient:latest /path/x.torrent` download into /data, serve
# /status on :9000 and report healthy while that answers.
FROM scratch

COPY bin/docker/etc/passwd bin/docker/etc/group /etc/
COPY --chown=10001:10001 bin/docker/data /data
COPY bin/btclient /btclient

USER 10001:10001
WORKDIR /data

# 6881 peer wire, 6000 overlay (gossip), 9000 /status and /metrics.
ENV BTCLIENT_PORT=6881 \
    BTCLIENT_OVERLAY_PORT=6000 \
    BTCLIENT_STATUS=0.0.0.0:9000
EXPOSE 6881/tcp 6000/tcp 9000/tcp

# No shell in the image: the binary probes its own /status (the URL comes from
# BTCLIENT_STATUS). Services without a status server (node, tracker, dnsd)
# override or disable this in their stack file.
HEALTHCHECK --interval=5s --timeout=4s --start-period=10s --retries=3 \
    CMD ["/btclient", "probe", "--timeout", "3s"]

ENTRYPOINT ["/btclient"]
CMD ["--help"]
