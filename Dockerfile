# Build and run partnergate in a container (used by docker-compose.yml). Not exercised in CI: the project's
# machines have no Docker engine.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/target/release/partnergate /usr/local/bin/partnergate
ENTRYPOINT ["partnergate"]
