SELECT version FROM schema_version;
SELECT count(*) FROM pg_tables WHERE tablename = 'profiles';
