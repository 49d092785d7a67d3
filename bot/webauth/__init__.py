"""Web authorization (网页授权, scope `snsapi_userinfo`): the follower's consent to their nickname.

Since 2021 `user/info` returns no nickname; this flow is the platform's one way left to it. The
chat offers a link (`links`), the bot signs a single-use `state` bound to the openid (`state`), the
platform redirects to `GET /oauth/callback` (`callback`), which exchanges the code (`client`),
stores the nickname and shows a page in the follower's language (`pages`). The settings live in
`settings` (imported by `bot.config`, so this package imports nothing at the top).
"""
