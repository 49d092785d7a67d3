"""Test helpers users import too: the WeChat simulator (signed pushes), the fake WeChat API and
the pytest plugin (`wechat_bot` fixture)."""
