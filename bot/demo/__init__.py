"""The demo that needs no WeChat account: a terminal chat and a web page that looks like WeChat,
both against the fake WeChat API."""
