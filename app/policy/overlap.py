"""Set reasoning between rules: does a deny cancel a permit, can two audiences meet."""

from app.policy.model import Audience, Conditions, Deny, Permit


def audience_within(inner: Audience, outer: Audience) -> bool:
    """Every caller matching `inner` also matches `outer` (sound, not complete)."""
    if inner.is_empty:
        return True  # an empty permit audience matches no one
    inner_keys = inner.keys()
    for key, values in outer.keys().items():
        mine = inner_keys.get(key)
        if mine is None or not mine <= values:
            return False
    return True


def audiences_may_meet(a: Audience, b: Audience) -> bool:
    """Some caller could match both (keys present in both must share a value)."""
    b_keys = b.keys()
    for key, values in a.keys().items():
        other = b_keys.get(key)
        # A caller has one agency and one sector but may hold several roles and relations.
        single_valued = key in ("agencies", "sectors")
        if other is not None and single_valued and not values & other:
            return False
    return all(values for values in a.keys().values()) and all(values for values in b_keys.values())


def conditions_within(inner: Conditions, outer: Conditions) -> bool:
    """Whenever `inner` holds, `outer` holds too."""
    inner_map = dict(inner)
    for key, values in outer:
        mine = inner_map.get(key)
        if mine is None or not mine <= values:
            return False
    return True


def deny_cancels(deny: Deny, permit: Permit) -> bool:
    """`deny` applies whenever `permit` would fire and blocks everything it grants."""
    if deny.kind != permit.view.kind:
        return False
    if deny.purposes is not None and not permit.purposes <= deny.purposes:
        return False
    if not audience_within(permit.audience, deny.audience):
        return False
    if not conditions_within(permit.when, deny.when):
        return False
    if permit.view.kind == "note":
        return permit.view.items <= deny.items
    return not permit.view.items.isdisjoint(deny.items)


def deny_may_block(deny: Deny, permit: Permit) -> bool:
    """`deny` could cancel `permit` for some caller and record."""
    if deny.kind != permit.view.kind or permit.view.items.isdisjoint(deny.items):
        return False
    if deny.purposes is not None and permit.purposes.isdisjoint(deny.purposes):
        return False
    if permit.audience.is_empty:
        return False
    return audiences_may_meet(permit.audience, deny.audience)
