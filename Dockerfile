# syntax=docker/dockerfile:1

# Build: a static binary (no cgo), reproducible paths, no symbol tables.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/rtmphub ./cmd/rtmphub \
 && mkdir -p /out/data

# Run: distroless static, as the non-root user (uid 65532). Docker lets
# unprivileged users bind ports below 1024 inside a container
# (net.ipv4.ip_unprivileged_port_start=0), so port 80 works without root.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/rtmphub /usr/local/bin/rtmphub
COPY --from=build --chown=65532:65532 /out/data /data
ENV RTMPHUB_DATA_DIR=/data
VOLUME ["/data"]
# 1935/tcp RTMP (and RTMPT sniffed), 1935/udp RTMP over QUIC,
# 80/tcp RTMPT, 1111/tcp administration.
EXPOSE 1935/tcp 1935/udp 80/tcp 1111/tcp
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/rtmphub"]
CMD ["serve"]
