-- One outbox relay publishes at a time, whatever the number of instances, so
-- each user's events reach the log in the order they were committed. The
-- holder renews its lease every round; another instance takes over only
-- after the lease has expired.
CREATE TABLE relay_lease (
    name           TEXT PRIMARY KEY,
    holder         TEXT NOT NULL,
    expires_at_ms  BIGINT NOT NULL
);
