SELECT username, coalesce(claimed_by, '-') FROM profiles ORDER BY username;
