"""The sandbox's test users: who the consent page approves on each network, and what they manage.

Fixed ids so tests and docs can name them. Several emulators read the same facts (the Facebook
user's Pages carry the Instagram business account the instagram_business emulator serves), so
they live here, in one place.
"""

from __future__ import annotations

# X (§1): GET /2/users/me
X_USER = {"id": "1500000000000000001", "username": "herald_sandbox", "name": "Herald Sandbox"}

# LinkedIn (§6): /v2/userinfo "sub", and the organizations the member administers.
LINKEDIN_MEMBER = {"sub": "hErAlDsAnDbOx", "name": "Herald Sandbox", "given_name": "Herald",
                   "family_name": "Sandbox", "email": "sandbox@herald.invalid"}
LINKEDIN_ORGS = [{"id": "90000001", "localizedName": "Herald Sandbox Org", "vanityName": "herald-sandbox"}]

# Facebook (§2): the user, the Pages they manage (with tasks), and the Instagram business account
# linked to the first Page (§3: GET /{page}?fields=instagram_business_account).
FACEBOOK_USER = {"id": "10000000000000001", "name": "Herald Sandbox"}
FACEBOOK_PAGES = [
    {"id": "200000000000001", "name": "Herald Sandbox Page", "category": "Software",
     "tasks": ["ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MESSAGING", "MODERATE", "MANAGE"],
     "instagram_business_account": "17841400000000001"},
    {"id": "200000000000002", "name": "Herald Second Page", "category": "Community",
     "tasks": ["ANALYZE", "CREATE_CONTENT", "MODERATE"], "instagram_business_account": None},
]
INSTAGRAM_BUSINESS_ACCOUNTS = {
    "17841400000000001": {"username": "herald_sandbox_biz", "name": "Herald Sandbox Biz",
                          "page_id": "200000000000001"},
}

# Instagram API with Instagram Login (§4): the professional account itself.
INSTAGRAM_LOGIN_USER = {"id": "17841400000000002", "user_id": "17841400000000002",
                        "username": "herald_sandbox_ig", "name": "Herald Sandbox IG",
                        "account_type": "BUSINESS"}

# Threads (§5): GET /v1.0/me?fields=id,username,name
THREADS_USER = {"id": "25000000000000001", "username": "herald_sandbox_threads", "name": "Herald Sandbox"}
