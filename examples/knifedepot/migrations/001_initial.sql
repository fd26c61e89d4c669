-- The knives for sale.
CREATE TABLE product (
    sku text PRIMARY KEY,
    name text NOT NULL,
    price numeric(10,2) NOT NULL
);

INSERT INTO product (sku, name, price) VALUES
    ('chef-210', 'Chef knife 210 mm', 89.00),
    ('santoku-180', 'Santoku 180 mm', 79.50),
    ('bread-230', 'Bread knife 230 mm', 54.90),
    ('paring-90', 'Paring knife 90 mm', 24.00),
    ('nakiri-165', 'Nakiri 165 mm', 92.00);

-- Sessions, for Symfony's PdoSessionHandler (its PostgreSQL schema), shared by every app host.
CREATE TABLE sessions (
    sess_id VARCHAR(128) NOT NULL PRIMARY KEY,
    sess_data BYTEA NOT NULL,
    sess_lifetime INTEGER NOT NULL,
    sess_time INTEGER NOT NULL
);
CREATE INDEX sessions_sess_lifetime_idx ON sessions (sess_lifetime);
