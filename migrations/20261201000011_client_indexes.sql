-- A client's report reads its posts, documents and proposed work by client: without
-- these each read scanned every client's rows.
CREATE INDEX posts_client_idx ON posts (client_id, scheduled_for);
CREATE INDEX documents_client_idx ON documents (client_id);
CREATE INDEX optimizations_client_idx ON optimizations (client_id, period);
