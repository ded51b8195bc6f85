-- Why: templates go out from the one central number, so they are ZenRent's, not free-form:
-- only templates approved in WhatsApp Manager and registered here may be sent, with exactly
-- their number of body parameters. Support staff or the service role register them; every
-- registration is audited. The audit log now also records what the service role and tenants do
-- (template approvals, daily limits, consent answers, picks), so its actor and message are
-- optional and its actions grow.

alter table private.support_audit_log
  alter column actor_id drop not null,
  alter column message_id drop not null,
  add column actor_kind text not null default 'support' check (actor_kind in ('support', 'service', 'tenant')),
  add column phone text,
  drop constraint support_audit_log_action_check,
  add constraint support_audit_log_action_check check (action in (
    'assign', 'assign_and_pin', 'dismiss', 'requeue_outbound', 'fail_outbound',
    'approve_template', 'set_daily_limit', 'consent_yes', 'consent_no', 'consent_report', 'pick', 'pick_none'));
comment on column private.support_audit_log.actor_kind is 'support (actor_id is the staff member), service (the service role) or tenant (phone).';

-- Support staff or the service role; the staff member's uid, or null for the service role.
create function private.require_support_or_service_role()
returns uuid
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  -- `role` is the caller's SET ROLE (security definer changes current_user, not this setting).
  if coalesce(current_setting('role', true), '') = 'service_role' or (select auth.role()) = 'service_role' then
    return null;
  end if;
  return private.require_support();
end
$$;
comment on function private.require_support_or_service_role() is
  'Null for the service role, the caller''s uid for support staff; 42501 support_only for anyone else.';

-- The two RPCs that inlined this check now use it.
create or replace function public.whatsapp_service_status()
returns jsonb
language plpgsql
stable
security definer -- aggregates over every landlord's messages without exposing any row; support and service role only
set search_path = ''
as $$
begin
  perform private.require_support_or_service_role();
  return jsonb_build_object(
    'inbound_last_24h', (select coalesce(jsonb_object_agg(s.routing_status, s.n), '{}') from (
        select m.routing_status, count(*) as n from public.whatsapp_messages m
        where m.direction = 'incoming' and m.user_id is null and m.created_at > now() - interval '24 hours'
        group by m.routing_status) s),
    'held', (select count(*) from public.whatsapp_messages m where m.is_held),
    'outbound_queued', (select count(*) from public.whatsapp_messages m where m.status = 'queued'),
    'outbound_sending', (select count(*) from public.whatsapp_messages m where m.status = 'sending'),
    'outbound_needs_review', (select count(*) from public.whatsapp_messages m where m.status = 'needs_review'),
    'oldest_queued_at', (select min(m.created_at) from public.whatsapp_messages m where m.status = 'queued'),
    'outbound_failed_last_24h', (select coalesce(jsonb_object_agg(coalesce(f.error_code::text, 'none'), f.n), '{}') from (
        select m.error_code, count(*) as n from public.whatsapp_messages m
        where m.status = 'failed' and m.failed_at > now() - interval '24 hours' group by m.error_code) f),
    'webhook_errors_last_24h', (select count(*) from private.webhook_errors e where e.received_at > now() - interval '24 hours'),
    'pending_statuses', (select count(*) from private.pending_message_statuses),
    'active_pins', (select count(*) from private.routing_pins p where p.expires_at > now()),
    'declined_links', (select count(*) from public.whatsapp_tenant_links l where l.state = 'declined'),
    'at', now());
end
$$;

create or replace function public.settle_outbound_message(message_id uuid, outcome text, note text)
returns jsonb
language plpgsql
security definer -- changes any landlord's outbound message and writes the audit log; support and service role only
set search_path = ''
as $$
declare
  actor uuid := private.require_support_or_service_role();
  m public.whatsapp_messages;
  why text := nullif(btrim(note), '');
begin
  if outcome is null or outcome not in ('requeue', 'failed') then
    raise exception using errcode = '22023', detail = 'invalid_value', message = format('invalid outcome %L', outcome),
      hint = 'requeue (the tenant did not get it) or failed';
  end if;
  if why is null then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'a note is required', hint = 'say what you checked, e.g. "not in the tenant''s chat"';
  end if;
  select * into m from public.whatsapp_messages x
    where x.id = message_id and x.direction = 'outgoing' and x.status = 'needs_review' for update;
  if m.id is null then
    raise exception using errcode = 'P0002', detail = 'not_found', message = 'no outbound message needing review with this id',
      hint = 'only needs_review messages can be settled';
  end if;
  update public.whatsapp_messages x set
    status = case when outcome = 'requeue' then 'queued' else 'failed' end,
    next_attempt_at = case when outcome = 'requeue' then now() end,
    failed_at = case when outcome = 'failed' then now() else x.failed_at end,
    error_title = case when outcome = 'failed' then 'failed after review: ' || why else x.error_title end
  where x.id = m.id;
  insert into private.support_audit_log (actor_id, actor_kind, actor_email, action, message_id, landlord_id, reason)
  values (actor, case when actor is null then 'service' else 'support' end, (select auth.jwt()) ->> 'email',
          case when outcome = 'requeue' then 'requeue_outbound' else 'fail_outbound' end, m.id, m.landlord_id, why);
  return jsonb_build_object('id', m.id, 'status', case when outcome = 'requeue' then 'queued' else 'failed' end);
end
$$;

create table private.whatsapp_templates (
  name text not null check (name ~ '^[a-z0-9_]+$' and length(name) <= 512),
  language text not null check (language ~ '^[a-z]{2,3}(_[A-Z]{2})?$'),
  category text not null check (category in ('utility', 'marketing', 'authentication')),
  body_parameter_count integer not null check (body_parameter_count between 0 and 100),
  approved_by uuid,
  approved_at timestamptz not null default now(),
  constraint whatsapp_templates_pkey primary key (name, language)
);
comment on table private.whatsapp_templates is
  'Templates approved in WhatsApp Manager for the central number; only these may be sent (public.approve_whatsapp_template).';
alter table private.whatsapp_templates enable row level security;
revoke all on private.whatsapp_templates from public, anon, authenticated, service_role;

create function public.approve_whatsapp_template(name text, language text, category text, body_parameter_count integer)
returns jsonb
language plpgsql
security definer -- writes the private template registry and the audit log; support and service role only
set search_path = ''
as $$
declare
  actor uuid := private.require_support_or_service_role();
  t private.whatsapp_templates;
begin
  if name is null or name !~ '^[a-z0-9_]+$' or length(name) > 512 then
    raise exception using errcode = '22023', detail = 'invalid_value', message = format('invalid template name %L', name),
      hint = 'the name exactly as approved in WhatsApp Manager: lowercase letters, digits and underscores';
  end if;
  if language is null or language !~ '^[a-z]{2,3}(_[A-Z]{2})?$' then
    raise exception using errcode = '22023', detail = 'invalid_value', message = format('invalid template language %L', language),
      hint = 'e.g. en, en_GB, pt_BR';
  end if;
  if category is null or category not in ('utility', 'marketing', 'authentication') then
    raise exception using errcode = '22023', detail = 'invalid_value', message = format('invalid template category %L', category),
      hint = 'utility, marketing or authentication, as in WhatsApp Manager';
  end if;
  if body_parameter_count is null or body_parameter_count not between 0 and 100 then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'body_parameter_count must be between 0 and 100',
      hint = 'the number of {{n}} placeholders in the template body';
  end if;
  insert into private.whatsapp_templates as w (name, language, category, body_parameter_count, approved_by)
  values (approve_whatsapp_template.name, approve_whatsapp_template.language, approve_whatsapp_template.category,
          approve_whatsapp_template.body_parameter_count, actor)
  on conflict on constraint whatsapp_templates_pkey do update
    set category = excluded.category, body_parameter_count = excluded.body_parameter_count,
        approved_by = excluded.approved_by, approved_at = now()
  returning * into t;
  insert into private.support_audit_log (actor_id, actor_email, actor_kind, action, details)
  values (actor, (select auth.jwt()) ->> 'email', case when actor is null then 'service' else 'support' end,
          'approve_template', to_jsonb(t));
  return to_jsonb(t) - 'approved_by';
end
$$;
comment on function public.approve_whatsapp_template(text, text, text, integer) is
  'Support / service role: register (or update) a template approved in WhatsApp Manager. Audited.';
revoke execute on function public.approve_whatsapp_template(text, text, text, integer) from public, anon, authenticated;
grant execute on function public.approve_whatsapp_template(text, text, text, integer) to authenticated, service_role;

create function private.registered_template(name text, language text)
returns private.whatsapp_templates
language sql
stable
security invoker
set search_path = ''
as $$
  select t from private.whatsapp_templates t where t.name = registered_template.name and t.language = registered_template.language
$$;
comment on function private.registered_template(text, text) is 'The registered template, or null.';
