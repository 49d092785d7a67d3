"""`python -m bot …` is `wechat-bot …`."""

from bot.cli import main

main()
