"""Mints the PyJWT token vectors pasted into JWTTests.swift (enum PyJWTVectors).

    pip install PyJWT      # made with PyJWT 2.15.1
    python3 Tests/ClaimCoreTests/jwt_vectors.py

HMAC and PyJWT's JSON encoding are deterministic, so a rerun prints the same tokens. Every time claim is fixed
(exp far in the future), so the vectors never expire; the Swift tests pass `now` explicitly.
"""

import warnings

import jwt

# PyJWT warns that a 55-byte key is short for HS512; the HS512 vector exists only to be rejected.
warnings.simplefilter("ignore")

SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"  # Supabase's local-dev default shape
OTHER_SECRET = "another-secret-that-is-also-at-least-32-bytes"
ISS = "https://xyz.supabase.co/auth/v1"
SUB = "8b1f3c5e-2d4a-4f6b-9c7e-0a1b2c3d4e5f"
IAT = 1_700_000_000
EXP = 4_102_444_800  # 2100-01-01T00:00:00Z


def supabase(**overrides):
    claims = {
        "aud": "authenticated",
        "exp": EXP,
        "iat": IAT,
        "iss": ISS,
        "sub": SUB,
        "email": "user@example.com",
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {},
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": IAT}],
        "session_id": "0f9e8d7c-6b5a-4c3d-2e1f-0a9b8c7d6e5f",
        "is_anonymous": False,
    }
    claims.update(overrides)
    return claims


VECTORS = [
    ("supabase", jwt.encode(supabase(), SECRET, algorithm="HS256")),
    ("audArray", jwt.encode(supabase(aud=["other", "authenticated"]), SECRET, algorithm="HS256")),
    ("decimalTimes", jwt.encode(supabase(exp=EXP + 0.5, iat=IAT + 0.25, nbf=IAT + 0.25), SECRET, algorithm="HS256")),
    ("wrongSecret", jwt.encode(supabase(), OTHER_SECRET, algorithm="HS256")),
    ("hs512", jwt.encode(supabase(), SECRET, algorithm="HS512")),
    ("algNone", jwt.encode(supabase(), None, algorithm="none")),
]

# Round-trip check with PyJWT itself, so a vector that PyJWT would not accept never gets committed.
for name, token in VECTORS[:3]:
    jwt.decode(token, SECRET, algorithms=["HS256"], audience="authenticated", issuer=ISS)

# Swift multi-line literals with a trailing backslash per line, so no line passes 120 columns.
print(f'    static let secret = "{SECRET}"')
print(f'    static let otherSecret = "{OTHER_SECRET}"')
print(f'    static let sub = "{SUB}"')
print(f'    static let issuer = "{ISS}"')
for name, token in VECTORS:
    chunks = [token[i : i + 100] for i in range(0, len(token), 100)]
    print(f'    static let {name} = """')
    for chunk in chunks[:-1]:
        print(f"        {chunk}\\")
    print(f"        {chunks[-1]}")
    print('        """')
