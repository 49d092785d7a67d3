"""What the bot knows about its followers: names and languages they chose or wrote in."""
