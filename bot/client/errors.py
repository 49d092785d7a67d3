"""What a call can end in besides an answer: the platform's refusal, no answer, a limit broken.

`WeChatAPIError` carries the platform's errcode and errmsg and, for the codes an operator meets,
what the code means in plain words (`explanation`). `LimitError` is raised *before* a call when
a request breaks one of the platform's documented limits; it names the field and the limit.
"""

from __future__ import annotations

ERR_TRANSPORT = -2  # our code: timeout, dropped connection, HTTP 5xx
ERR_BAD_ANSWER = -3  # our code: the answer was not the JSON object the platform sends

# errcode -> what it means for the operator (platform notes §3 and §8)
EXPLANATIONS: dict[int, str] = {
    -1: "the platform is busy; retried with backoff",
    ERR_TRANSPORT: "no answer from the platform (timeout, dropped connection or HTTP 5xx)",
    ERR_BAD_ANSWER: "the platform's answer was not the JSON it documents",
    40001: "the access token is invalid or not the latest",
    40003: "this openid does not follow the account",
    40004: "invalid media type",
    40005: "the file's format is not allowed for this media type",
    40007: "unknown or expired media_id (temporary media lives 3 days)",
    40009: "image too large",
    40010: "voice too large",
    40011: "video too large",
    40012: "thumb too large (at most 64 KB)",
    40013: "the AppID is wrong: check WECHAT_APP_ID",
    40014: "the access token is not valid",
    40016: "too many or too few top-level menu buttons (1 to 3)",
    40017: "invalid menu button type",
    40018: "a top-level button's name is too long (16 bytes)",
    40019: "a top-level button's key is missing or too long (128 bytes)",
    40020: "a top-level button's url is missing or too long (1024 bytes)",
    40023: "too many sub-buttons (at most 5)",
    40024: "invalid sub-button type",
    40025: "a sub-button's name is too long (60 bytes)",
    40026: "a sub-button's key is missing or too long (128 bytes)",
    40027: "a sub-button's url is missing or too long (1024 bytes)",
    40032: "too many or no openids in one call",
    40037: "unknown template_id",
    40052: "invalid QR-code action_name",
    40053: "invalid QR-code scene (scene_id or scene_str out of range)",
    40054: "a sub-button's url is not an allowed domain",
    40055: "a top-level button's url is not an allowed domain",
    40092: "the remark is too long (under 30 bytes)",
    40125: "the AppSecret is wrong: check WECHAT_APP_SECRET",
    42001: "the access token expired",
    43004: "the user must follow the account first",
    43101: "the follower has not accepted this subscription notice",
    45009: "the daily quota of this API is used up; `wechat-bot` cannot retry it today",
    45011: "the per-minute quota of this API is used up; try again in a minute",
    45015: "the 48-hour reply window passed or the user unfollowed",
    45029: "the account has used all 100,000 permanent QR codes",
    45047: "the customer-service quota for this follower is used up",
    45056: "the account already has 100 tags",
    45057: "a tag with more than 100,000 followers cannot be deleted",
    45058: "tags 0, 1 and 2 are the platform's own and cannot be changed",
    45059: "this follower already has 20 tags",
    45103: "news material is made with draft/add and freepublish/submit now",
    45157: "a tag with this name exists",
    45158: "a tag's name is too long (30 bytes)",
    45159: "unknown tag_id",
    46003: "the account has no menu",
    47001: "the request body is not the JSON the platform expects",
    47003: "a template or notice value is missing or breaks its type's rules",
    48001: "this API is not authorised for the account (most need a verified account)",
    48006: "clear_quota is limited to 10 a month",
    65301: "unknown conditional menu",
    65302: "unknown user",
    65303: "create the default menu before a conditional one",
    65304: "a conditional menu needs a matchrule",
    65320: "matchrule fields other than tag_id are no longer supported",
    76021: "unknown cgi_path",
}


class WeChatAPIError(Exception):
    """The platform refused a call (its errcode/errmsg) or gave no usable answer."""

    def __init__(self, errcode: int, errmsg: str, endpoint: str) -> None:
        """`endpoint` is a short name such as "user_info" (never a URL)."""
        super().__init__(errcode, errmsg, endpoint)
        self.errcode = errcode
        self.errmsg = errmsg
        self.endpoint = endpoint

    @property
    def explanation(self) -> str:
        """What the errcode means in plain words ("" for a code this module does not know)."""
        return EXPLANATIONS.get(self.errcode, "")

    def __str__(self) -> str:
        """E.g. `user_info: errcode 40003: invalid openid (this openid does not follow …)`."""
        text = f"{self.endpoint}: errcode {self.errcode}: {self.errmsg}"
        return f"{text} ({self.explanation})" if self.explanation else text


class TransientAPIError(WeChatAPIError):
    """No answer after the bounded retries (timeouts, dropped connections, 5xx, -1)."""


class LimitError(ValueError):
    """A request breaks a documented platform limit; nothing was sent.

    `field` names the offending value (e.g. `button[3]`, `button[0].name`, `openid_list`).
    """

    def __init__(self, field: str, problem: str) -> None:
        """`problem` says the limit and what was given."""
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
