SELECT count(*) FROM challenges;
