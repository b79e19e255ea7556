SELECT user_id, username, length(code) FROM challenges;
