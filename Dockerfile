# syntax=docker/dockerfile:1
#
# pimbot: a static binary on distroless, running as the non-root user 65532.
#
#   docker build -t pimbot .
#   docker run --rm -p 3000:3000 -e REDIS_URL=redis://redis:6379/0 \
#     -e SLACK_BOT_TOKEN=xoxb-... -e SLACK_APP_TOKEN=xapp-... \
#     -v "$PWD/pimbot.yaml:/etc/pimbot/pimbot.yaml:ro" -e PIMBOT_CONFIG=/etc/pimbot/pimbot.yaml pimbot
#   docker run --rm -e REDIS_URL=... -v ... pimbot check     # any other command: check, audit, shell
#
# See docs/operations.md.

FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-mod=readonly
# Modules in a layer of their own: it is rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w" -o /out/pimbot ./cmd/pimbot

# static-debian12 carries CA certificates, time zone data and the nonroot user; no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pimbot /usr/local/bin/pimbot
USER nonroot:nonroot
# The HTTP listener (PIMBOT_ADDR, default :3000): /slack/*, /api/messages, /auth/callback,
# /healthz, /readyz, /metrics.
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/pimbot"]
CMD ["serve"]
