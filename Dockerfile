# One image for every role: mailscope producer | worker | provision | ...
FROM golang:1.26 AS build
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/mailscope/mailscope/version.Version=${VERSION}" \
    -o /mailscope ./cmd/mailscope

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /mailscope /mailscope
# Numeric, so that Kubernetes' runAsNonRoot can verify it (the base
# image's USER is the name "nonroot").
USER 65532:65532
ENTRYPOINT ["/mailscope"]
