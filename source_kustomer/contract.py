"""Kustomer's published API contract, for the endpoints this connector reads.

Written from what Kustomer publishes, never from what the connector sends:

- ``OAS``: Kustomer's OpenAPI description "Core Resources" 1.0 (as generated into the TypeScript
  client LarisLab/kustomer-client, ``openapi.json``, ``src/api/types.gen.ts``, ``src/api/sdk.gen.ts``);
  ``OAS-ACCESS`` is its "Access management" part (users, teams, auth tokens) in the same client.
- ``DOCS``: developer.kustomer.com (concepts/pagination, concepts/search, concepts/errors,
  concepts/rate-limits, get-started/regions-and-base-urls, one page per API operation).

Where Kustomer publishes nothing and the connector relies on an endpoint, parameter or search
attribute anyway, the entry says so in ``relied_on``: why the connector needs it and what guards it
at run time. The contract test (``integration_tests/test_contract.py``) checks every request the
end-to-end suite sends against this table; the sandbox refuses, as Kustomer would, what it does not
allow; the connector's ``check`` compares an API key's roles with the roles listed here.

Roles: each endpoint needs any one of its roles. Kustomer lists a permission-set role
(``org.permission.<object>.<verb>``) beside each legacy role (``org.user.<object>.read``,
``org.admin.<object>.read``); both forms are accepted. An empty tuple means Kustomer documents none;
``any_key`` marks an endpoint any valid key may call, whatever its roles.
"""

import re
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Tuple

PAGES = frozenset({"page", "pageSize"})  # DOCS concepts/pagination: every paginated list and the search

#: Kustomer's regions (DOCS get-started/regions-and-base-urls): the pod that serves each, and its API
#: host. The org's own host, https://<org>.api.kustomerapp.com, routes to the right region by itself.
#: A key sent to another region's host fails with "Auth token associated with pod prod2 but request
#: is being handled by prod1".
REGIONS: Mapping[str, Tuple[str, str, str]] = {
    "us": ("prod1", "https://api.kustomerapp.com", "the United States"),
    "eu": ("prod2", "https://api.prod2.kustomerapp.com", "the European Union"),
    "india": ("prod4", "https://api.prod4.kustomerapp.com", "India"),
}
ORG_HOST = "https://{org}.api.kustomerapp.com"

#: Where a search runs: the last two years (``SEARCH``) or older objects (``ARCHIVE``).
SEARCH = "/v1/customers/search"
ARCHIVE = "/v1/customers/archive/search"

_SEARCH_ROLES = (
    "org.permission.search.create", "org.user.search.read",
    "org.permission.search.update", "org.admin.search.read",
    "org.permission.search_global.create",
    "org.permission.search_preview.create",
)


@dataclass(frozen=True)
class Endpoint:
    """One Kustomer operation: ``method``, ``path`` (``{id}`` for an object id), the query parameters
    Kustomer documents for it, the roles that let a key call it (any one), the largest page it
    serves, and where it is documented."""

    method: str
    path: str
    params: FrozenSet[str]
    roles: Tuple[str, ...]
    source: str
    max_page_size: Optional[int] = None
    relied_on: str = ""
    any_key: bool = False
    _pattern: "re.Pattern[str]" = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pattern = "^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(self.path)) + "$"
        object.__setattr__(self, "_pattern", re.compile(pattern))

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    def matches(self, method: str, path: str) -> bool:
        return method.upper() == self.method and self._pattern.match(path.rstrip("/") or "/") is not None


def _endpoint(method: str, path: str, params: Iterable[str], roles: Sequence[str], source: str, **kwargs: Any) -> Endpoint:
    return Endpoint(method, path, frozenset(params), tuple(roles), source, **kwargs)


ENDPOINTS: Tuple[Endpoint, ...] = (
    # --- search ---------------------------------------------------------------------------------
    _endpoint("POST", SEARCH, PAGES | {"idsOnly"}, _SEARCH_ROLES,
              "OAS CustomerSearch; DOCS concepts/search (page, pageSize up to 500, idsOnly)", max_page_size=500),
    _endpoint("POST", ARCHIVE, PAGES, _SEARCH_ROLES,
              "OAS CustomerArchiveSearch (its page links carry page and pageSize); DOCS concepts/pagination",
              max_page_size=500),
    # --- the key itself ---------------------------------------------------------------------------
    _endpoint("GET", "/v1/auth/tokens/current", (), (),
              "OAS-ACCESS getCurrentAuthToken; DOCS get-started/quickstart: works with any valid key, whatever its roles",
              any_key=True),
    # --- org lists --------------------------------------------------------------------------------
    _endpoint("GET", "/v1/users", PAGES | {"deleted", "pending", "userType", "email"},
              ("org.permission.user.read", "org.user.read"),
              "OAS-ACCESS getUsers (the filters cannot be combined); DOCS access-management/get-users; "
              "DOCS concepts/pagination (users: up to 500 per page)", max_page_size=500),
    _endpoint("GET", "/v1/teams", PAGES, (),
              "OAS-ACCESS getTeams; DOCS concepts/pagination (teams: up to 500 per page)", max_page_size=500),
    _endpoint("GET", "/v1/klasses", PAGES | {"status"},
              ("org.permission.klass.read", "org.user.klass.read", "org.admin.klass.read"),
              "OAS GetKlasses (status: enabled, disabled or existing_only; default enabled)", max_page_size=100),
    _endpoint("GET", "/v1/brands", PAGES, ("org.permission.brand.read", "org.admin.brand.read", "org.user.brand.read"),
              "OAS GetBrands", max_page_size=100),
    _endpoint("GET", "/v1/schedules", PAGES,
              ("org.permission.schedule.read", "org.user.schedule.read", "org.admin.schedule.read"),
              "OAS GetAllSchedules", max_page_size=100),
    _endpoint("GET", "/v1/satisfaction", PAGES, ("org.permission.satisfaction.read", "org.user.satisfaction.read"),
              "OAS GetSatisfaction (survey forms, not responses)", max_page_size=100),
    _endpoint("GET", "/v1/spam/senders", PAGES, ("org.permission.spam.read", "org.admin.spam.read"),
              "OAS GetSpamSenders (a paginated list); DOCS concepts/pagination", max_page_size=100),
    _endpoint("GET", "/v1/snoozes", PAGES, ("org.permission.snooze.read",),
              "DOCS core-resources/get-snoozes and settings-and-configurations/get-all-snoozes; DOCS concepts/pagination",
              max_page_size=100),
    _endpoint("GET", "/v1/routing/queues", PAGES,
              ("org.permission.queue.read", "org.permission.routing.read", "org.user.routing.read"),
              "DOCS queues-and-routing/get-queues (a paginated list); DOCS concepts/pagination", max_page_size=100),
    _endpoint("GET", "/v1/outboundAccounts", PAGES, ("org.permission.apps.read", "org.user.apps.read"),
              "OAS GetOutboundAccounts (items have no id)", max_page_size=100),
    _endpoint("GET", "/v1/audit-logs",
              {"count", "after", "before", "filter[objectType]", "filter[objectId]", "filter[userId]",
               "filter[include]", "filter[start]", "filter[end]"},
              ("org.permission.audit_logs.read", "org.user.audit_logs.read"),
              "OAS GetAuditLogs (count: default 100, at most 1000; entries expire, see expiresAt)", max_page_size=1000),
    _endpoint("GET", "/v1/metadata/{resource}", (),
              ("org.permission.metadata.read", "org.user.metadata.read", "org.admin.metadata.read"),
              "OAS GetCustomAttributeMetadata (resource: company, conversation, customer, message, kobject.<klass>)"),
    # Endpoints Kustomer publishes no description of: every peer and Etleap read them in production.
    _endpoint("GET", "/v1/tags", PAGES, (), "no Kustomer document found", max_page_size=100,
              relied_on="Kustomer's only tag list; the Singer tap-kustomer reads it with page and pageSize. "
                        "A change would fail the tags stream loudly (Kustomer's error quoted)."),
    _endpoint("GET", "/v1/shortcuts", PAGES, (), "DOCS lists shortcuts under its Settings API; the page was not found",
              max_page_size=100,
              relied_on="Kustomer's only shortcut list; the Singer tap-kustomer reads it with page and pageSize."),
    _endpoint("GET", "/v1/cards", PAGES, (), "DOCS lists cards under its Apps platform API; the page was not found",
              max_page_size=100, relied_on="Kustomer's only card list; an Etleap entity."),
    _endpoint("GET", "/v1/routing/settings", PAGES, (), "no Kustomer document found", max_page_size=100,
              relied_on="Kustomer's list of team routing settings; an Etleap entity."),
    _endpoint("GET", "/v1/notifications", PAGES, (), "no Kustomer document found", max_page_size=100,
              relied_on="The notifications of the API key's own user; an Etleap entity."),
    _endpoint("GET", "/v1/slas", PAGES | {"versions"}, (),
              "OAS documents GET /v1/slas/{id}?versions=active|all only", max_page_size=100,
              relied_on="The only way to list SLAs; MeltanoLabs tap-kustomer reads GET /v1/slas?versions=all and "
                        "its included sla_version resources."),
    # --- per object ------------------------------------------------------------------------------
    _endpoint("GET", "/v1/conversations/{id}/events", PAGES | {"sort"},
              ("org.permission.event.read", "org.user.event.read"), "OAS GetConversationEvents", max_page_size=100),
    _endpoint("GET", "/v1/conversations/{id}/forwards", PAGES,
              ("org.permission.draft.read", "org.user.draft.read"), "OAS GetAllForwardsByConversation", max_page_size=100),
    _endpoint("GET", "/v1/conversations/{id}/times", PAGES,
              ("org.permission.conversation.read", "org.user.conversation.read"),
              "OAS GetConversationTimesByConversationId; DOCS concepts/pagination (conversation times: up to 1,000)",
              max_page_size=1000),
    _endpoint("GET", "/v1/conversations/{id}/attachments", PAGES,
              ("org.permission.attachment.read", "org.user.attachment.read"),
              "OAS GetConversationAttachments (name, contentType, contentLength, redacted, message)", max_page_size=100),
    _endpoint("GET", "/v1/conversations/{id}/notes", PAGES,
              ("org.permission.note.read", "org.user.note.read"), "OAS GetNotesByConversation", max_page_size=100),
    _endpoint("GET", "/v1/conversations/{id}/messages", PAGES | {"include"},
              ("org.permission.message.read", "org.user.message.read"),
              "OAS GetMessagesByConversation (include: attachments)", max_page_size=100),
    _endpoint("GET", "/v1/customers/{id}/drafts", PAGES | {"include"},
              ("org.permission.draft.read", "org.user.draft.read"), "OAS GetAllDraftsByCustomer", max_page_size=100),
    _endpoint("GET", "/v1/customers/{id}/merges", PAGES,
              ("org.permission.customer_merge.read", "org.user.customer.read", "org.admin.customer.merge.read"),
              "OAS GetCustomerMergesByCustomer", max_page_size=100),
    _endpoint("GET", "/v1/customers/{id}/notes", PAGES,
              ("org.permission.note.read", "org.user.note.read"), "OAS GetNotesByCustomer", max_page_size=100),
)


# --- search attributes ---------------------------------------------------------------------------
# OAS CustomerSearch: one flat list of standard attributes (the prefix names the object), plus the
# org's own attributes (<object>_custom_<name>, kobject_custom_<klass>_<name>).
_STANDARD_SEARCH_ATTRIBUTES = """
customer_any_text customer_name customer_gender customer_presence customer_email customer_shared_email
customer_phone customer_shared_phone customer_urls customer_address customer_locale customer_activity_at
customer_last_seen_at customer_signed_up_at customer_last_message_sent_at customer_last_message_out_sent_at
customer_last_message_unresponded_to_sent_at customer_last_message_at customer_externalId
customer_shared_externalId customer_created_at customer_updated_at customer_modified_at customer_created_by
customer_modified_by customer_satisfaction_avg_score customer_satisfaction_avg_rating
customer_conversations_count customer_status customer_progressive_status customer_active_users
customer_watchers customer_tags customer_sentiment customer_social_type customer_social_userid
customer_social_username customer_shared_social_type customer_shared_social_userid
customer_shared_social_username customer_default_lang customer_imported_at customer_imported
company_any_text company_name company_tags company_default_lang company_imported_at company_imported
message_any_text message_body message_channel message_size message_direction message_sent_at
message_created_at message_updated_at message_created_by message_modified_by message_sentiment
message_customer_id message_status message_error_at message_error_title message_external_id
message_direction_type message_created_by_teams message_redacted message_redacted_at message_imported_at
message_imported message_recipients message_sender message_shortcuts message_subject message_source
message_attachment_count message_auto message_lang
note_any_text note_body note_created_at note_modified_at note_updated_at note_created_by note_modified_by
note_deleted note_user_mentions note_team_mentions note_attachment_count note_external_id note_customer_id
note_conversation_id note_lang note_imported_at note_imported
conversation_any_text conversation_name conversation_sentiment conversation_status conversation_sub_status
conversation_created_at conversation_updated_at conversation_modified_at conversation_modified_by
conversation_message_count conversation_note_count conversation_satisfaction_survey_id
conversation_satisfaction_sent_by conversation_satisfaction_sent_by_teams
conversation_satisfaction_created_at conversation_satisfaction_score conversation_satisfaction_rating
conversation_satisfaction_status conversation_channels conversation_satisfaction conversation_priority
conversation_tags conversation_assigned_users conversation_assigned_teams conversation_last_message_sent_at
conversation_last_message_out_sent_at conversation_last_message_unresponded_to_sent_at
conversation_last_message_at conversation_first_response_sent_at conversation_first_response_time
conversation_first_response_created_by conversation_last_response_created_by
conversation_last_message_direction conversation_direction conversation_outbound_message_count
conversation_customer_id conversation_campaign_id conversation_first_message_in_sent_at
conversation_first_message_in_direction_type conversation_first_message_in_channel
conversation_first_message_out_sent_at conversation_first_message_out_direction_type
conversation_first_message_out_channel conversation_default_lang conversation_sla_status
conversation_sla_version_id conversation_sla_id conversation_sla_breached conversation_sla_breach_at
conversation_sla_satisfied_at conversation_sla_breach_metric conversation_first_done_created_by
conversation_last_done_created_at conversation_last_done_created_by conversation_last_done_created_by_teams
conversation_reply_channel conversation_queue conversation_external_queue conversation_ended
conversation_ended_at conversation_ended_reason conversation_imported_at conversation_imported
conversation_time_created_at conversation_time_conversation_id conversation_time_created_by_teams
conversation_time_assigned_users conversation_time_assigned_teams conversation_time_touched
conversation_time_reopened conversation_time_snoozed conversation_time_resolved conversation_time_message_at
conversation_time_message_time conversation_time_messages_sent conversation_time_note_at
conversation_time_note_time conversation_time_notes_sent conversation_time_handle_at
conversation_time_handle_time conversation_time_channels
any_text tracking_events
kobject_any_text kobject_created_at kobject_updated_at kobject_imported_at kobject_imported
"""

# OAS CustomerArchiveSearch: the attributes its and/or/not accept, and those it sorts on.
_ARCHIVE_ATTRIBUTES = """
conversation_id conversation_created_at conversation_updated_at conversation_customer_id
conversation_any_text conversation_deleted customer_id customer_companyId customer_created_at
customer_updated_at customer_deleted customer_any_text_new message_id message_created_at message_updated_at
message_conversation_id message_any_text kobject_id kobject_created_at kobject_updated_at kobject_customer_id
kobject_company_id kobject_any_text company_created_at company_updated_at
^kobject_.*_id$ ^kobject_.*_created_at$ ^kobject_.*_updated_at$ ^kobject_.*_customer_id$
^kobject_.*_company_id$ ^kobject_.*_any_text$
"""
_ARCHIVE_SORTABLE = """
conversation_created_at conversation_updated_at conversation_customer_id conversation_deleted
customer_companyId customer_created_at customer_updated_at customer_deleted message_id message_created_at
message_updated_at kobject_created_at kobject_updated_at ^kobject.*_created_at$ ^kobject.*_updated_at$
company_created_at company_updated_at
"""
# OAS CustomerSearch: "You can sort based on the following customer attributes ... Sorting based on
# other standard Object attributes is unavailable."
_SEARCH_SORTABLE = """
customer_name customer_gender customer_created_at customer_updated_at customer_modified_at customer_externalId
customer_activity_at customer_last_seen_at customer_signed_up_at customer_lastmessage_preview
customer_progressive_status customer_done customer_open customer_snoozed customer_last_message_sent_at
customer_last_message_out_sent_at customer_last_message_unresponded_to_sent_at customer_last_message_at
"""
_CUSTOM_ATTRIBUTES = r"^(customer|company|message|conversation|note)_custom_.+$ ^kobject_custom_.+$"

# Keyset paging needs a sort on the object's updatedAt; OAS documents such a sort only for customers
# on /search, and documents no company_updated_at filter there. Every peer (Stitch's and Meltano's
# taps) sorts and filters these in production. The connector checks every page it reads: objects
# outside the range asked for, or out of ascending order, stop the stream loudly with what Kustomer
# answered (see search.SearchPageExtractor).
_RELIED_ON_SEARCH = (
    "Keyset paging by updatedAt, Kustomer's own recipe for reading past its 100-page cap; every peer sorts "
    "this context so in production. Every page is checked: out of order or out of range stops the stream."
)
_RELIED_ON_SORTS = "conversation_updated_at message_updated_at note_updated_at kobject_updated_at company_updated_at"
_RELIED_ON_FILTERS = "company_updated_at"
#: What the connector reads into an attribute Kustomer documents without saying what exactly it counts.
_RELIED_ON_ATTRIBUTES = {
    "conversation noteCount": (
        "Documented on the conversation (OAS Conversation); the connector reads it as the number of notes "
        "GET /v1/conversations/{id}/notes lists, and asks that list only of a conversation whose noteCount is "
        "not 0 (conversation_notes). A note Kustomer has not counted yet is still read by the notes stream."
    ),
}


def _words(text: str) -> Tuple[str, ...]:
    return tuple(text.split())


@dataclass(frozen=True)
class AttributeSet:
    """Attribute names and ``^...$`` patterns: ``in`` tells whether an attribute is one of them."""

    names: FrozenSet[str]
    patterns: Tuple["re.Pattern[str]", ...]

    @classmethod
    def of(cls, *texts: str) -> "AttributeSet":
        words = [word for text in texts for word in _words(text)]
        return cls(frozenset(w for w in words if not w.startswith("^")), tuple(re.compile(w) for w in words if w.startswith("^")))

    def __contains__(self, attribute: object) -> bool:
        return isinstance(attribute, str) and (attribute in self.names or any(p.match(attribute) for p in self.patterns))


@dataclass(frozen=True)
class SearchContract:
    """What one search endpoint accepts: contexts, body fields, filter and sort attributes."""

    contexts: "re.Pattern[str]"
    body_fields: FrozenSet[str]
    filters: AttributeSet
    sorts: AttributeSet
    relied_on_filters: AttributeSet = AttributeSet.of("")
    relied_on_sorts: AttributeSet = AttributeSet.of("")


SEARCHES: Mapping[str, SearchContract] = {
    SEARCH: SearchContract(
        contexts=re.compile(r"^(company|customer|message|conversation|conversation_time|note|kobject|kobject_.*|work_session|work_item)$"),
        body_fields=frozenset(_words("queryContext and or not sort includeDeleted timeZone fields aggs searchHash")),
        filters=AttributeSet.of(_STANDARD_SEARCH_ATTRIBUTES, _CUSTOM_ATTRIBUTES),
        sorts=AttributeSet.of(_SEARCH_SORTABLE),
        relied_on_filters=AttributeSet.of(_RELIED_ON_FILTERS),
        relied_on_sorts=AttributeSet.of(_RELIED_ON_SORTS),
    ),
    ARCHIVE: SearchContract(
        contexts=re.compile(r"^(message|conversation|customer|kobject|kobject_.*|company)$"),
        body_fields=frozenset(_words("queryContext and or not sort includeDeleted timeZone")),
        filters=AttributeSet.of(_ARCHIVE_ATTRIBUTES),
        sorts=AttributeSet.of(_ARCHIVE_SORTABLE),
    ),
}

#: The search operators Kustomer's docs use (concepts/search, guides/search-recipes).
OPERATORS = frozenset(_words("equals contains in gt gte lt lte not_set"))


def endpoint_for(method: str, path: str) -> Optional[Endpoint]:
    """The documented (or relied-on) endpoint a request goes to, or None."""
    return next((endpoint for endpoint in ENDPOINTS if endpoint.matches(method, path)), None)


def updated_at_attribute(query_context: str) -> str:
    """The search attribute of an object's updatedAt: ``<context>_updated_at``; every Klass's objects
    (``kobject`` and ``kobject_<klass>``) answer to ``kobject_updated_at`` (OAS, both searches)."""
    return "kobject_updated_at" if query_context.startswith("kobject") else f"{query_context}_updated_at"


def problems(method: str, path: str, params: Iterable[Tuple[str, str]], body: Any) -> List[str]:
    """What in a request Kustomer does not document (and the connector does not rely on): [] if nothing."""
    endpoint = endpoint_for(method, path)
    if endpoint is None:
        return [f"{method} {path} is not an endpoint Kustomer documents"]
    found = [f"query parameter {name!r} is not documented for {endpoint.key}" for name, _ in params if name not in endpoint.params]
    search = SEARCHES.get(endpoint.path)
    if search is not None:
        found += search_problems(search, body)
    return found


def search_problems(search: SearchContract, body: Any) -> List[str]:
    """What a search body holds that its endpoint does not document."""
    if not isinstance(body, dict):
        return ["the search body is not a JSON object"]
    found = [f"body field {name!r} is not documented" for name in body if name not in search.body_fields]
    context = body.get("queryContext")
    if not isinstance(context, str) or not search.contexts.match(context):
        found.append(f"queryContext {context!r} is not documented")
    for group in ("and", "or", "not"):
        for attribute, operator in _criteria(body.get(group)):
            if attribute not in search.filters and attribute not in search.relied_on_filters:
                found.append(f"filter attribute {attribute!r} is not documented")
            if operator is None:
                found.append(f"criterion {attribute!r} is not an {{operator: value}} object")
            elif operator not in OPERATORS:
                found.append(f"operator {operator!r} is not documented")
    for item in _items(body.get("sort")):
        for attribute in item:
            if attribute not in search.sorts and attribute not in search.relied_on_sorts:
                found.append(f"sort attribute {attribute!r} is not documented")
    return found


def _items(group: Any) -> List[Mapping[str, Any]]:
    """The objects of a search group, given (as Kustomer allows) as one object or a list of them."""
    items = [group] if isinstance(group, dict) else group if isinstance(group, list) else []
    return [item for item in items if isinstance(item, dict)]


def _criteria(group: Any) -> Iterable[Tuple[str, Optional[str]]]:
    """``(attribute, operator)`` of every criterion in an and/or/not group, nested groups included;
    the operator is None where a criterion is not an ``{operator: value}`` object."""
    for item in _items(group):
        for key, value in item.items():
            if key in ("and", "or", "not"):
                yield from _criteria(value)
            elif isinstance(value, dict) and value:
                for operator in value:
                    yield key, operator
            else:
                yield key, None


def relied_on() -> Dict[str, str]:
    """Every place the connector goes beyond what Kustomer documents, and why it may."""
    found = {endpoint.key: endpoint.relied_on for endpoint in ENDPOINTS if endpoint.relied_on}
    for attribute in sorted(SEARCHES[SEARCH].relied_on_sorts.names):
        found[f"{SEARCH} sort {attribute}"] = _RELIED_ON_SEARCH
    for attribute in sorted(SEARCHES[SEARCH].relied_on_filters.names):
        found[f"{SEARCH} filter {attribute}"] = _RELIED_ON_SEARCH
    found.update(_RELIED_ON_ATTRIBUTES)
    return found
