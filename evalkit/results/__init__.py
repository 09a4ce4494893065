"""Results over saved runs: summaries, comparability, reports, the leaderboard, the gate,
run-by-run comparison, their formats and HTML pages."""
