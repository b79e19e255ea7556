CREATE TABLE schema_version (version integer NOT NULL);
INSERT INTO schema_version VALUES (99);
