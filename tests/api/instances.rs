//! Several instances on one PostgreSQL database.
