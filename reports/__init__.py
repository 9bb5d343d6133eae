"""Reports: leaderboard CSV, tables and HTML built from result rows."""
