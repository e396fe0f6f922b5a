"""What a migration does to its surroundings: the observer's samples and their summary,
production-like traffic, long readers holding locks, and the plans of the application's
queries before and after."""
