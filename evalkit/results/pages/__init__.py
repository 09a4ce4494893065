"""Self-contained HTML pages (report, comparison, a sweep's trend), their CSS and JS as files."""
