SELECT count(*) FROM profiles;
