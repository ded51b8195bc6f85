-- Why: one person must never be split in two by phone formats. Landlords type numbers as
-- "+44 7700 900123", "0044 ...", "07700-900123"; WhatsApp sends wa_id as E.164 digits without
-- '+', with country quirks (Mexico's legacy "521" mobile prefix, Brazilian mobiles that lost
-- their ninth digit). private.normalize_phone() maps all of them to one key: E.164 digits,
-- no '+', the form WhatsApp uses in `from` / `wa_id`. Garbage becomes null, never a guess.

create or replace function private.normalize_phone(raw text, default_country text default 'GB')
returns text
language plpgsql
immutable
parallel safe
security invoker
set search_path = ''
as $$
declare
  country text := upper(coalesce(nullif(btrim(default_country), ''), 'GB'));
  s text := btrim(raw);
  d text;
  intl boolean := false;
  cc text;            -- the default country's calling code
  trunk text;         -- its national (trunk) prefix, null where numbers keep their leading digit
  nsn_min int;        -- shortest and longest national significant number
  nsn_max int;
  n text;             -- national significant number
  e text;             -- result
  a int;
begin
  if s is null or s = '' then
    return null;
  end if;
  -- Only what people put in phone numbers: digits, one leading '+', spaces, dots, dashes, brackets, slashes.
  if s !~ '^\+?[0-9 ()./\-]+$' or s ~ '^\+.*\+' then
    return null;
  end if;

  select v.cc, v.trunk, v.nsn_min, v.nsn_max into cc, trunk, nsn_min, nsn_max
  from (values
    ('GB', '44', '0', 7, 10), ('US', '1', '1', 10, 10), ('CA', '1', '1', 10, 10),
    ('BR', '55', '0', 10, 11), ('MX', '52', null, 10, 10), ('AR', '54', '0', 10, 11),
    ('IN', '91', '0', 10, 10), ('DE', '49', '0', 6, 13), ('FR', '33', '0', 9, 9),
    ('ES', '34', null, 9, 9), ('IT', '39', null, 6, 11), ('IE', '353', '0', 7, 9),
    ('NL', '31', '0', 9, 9), ('PT', '351', null, 9, 9), ('AU', '61', '0', 9, 9),
    ('ZA', '27', '0', 9, 9), ('NG', '234', '0', 8, 10), ('PL', '48', null, 9, 9),
    ('SE', '46', '0', 7, 9)
  ) as v (iso2, cc, trunk, nsn_min, nsn_max)
  where v.iso2 = country;
  if cc is null then
    raise exception using errcode = '22023',
      message = format('unsupported default country %L', default_country),
      hint = 'use an ISO 3166-1 alpha-2 code such as GB, US, BR, MX, AR, IN or DE';
  end if;

  d := regexp_replace(s, '[^0-9]', '', 'g');
  if left(s, 1) = '+' then
    intl := true;
  elsif left(d, 2) = '00' then
    intl := true; d := substr(d, 3);
  elsif cc = '1' and left(d, 3) = '011' then
    intl := true; d := substr(d, 4);
  end if;

  if intl then
    e := d;
  elsif trunk is not null and left(d, length(trunk)) = trunk
        and length(d) - length(trunk) between nsn_min and nsn_max + 2 then
    n := substr(d, length(trunk) + 1);
    -- Argentina: national mobiles are written 0 + area + 15 + subscriber; E.164 is 54 9 area subscriber.
    if cc = '54' and length(n) = 12 then
      for a in 2..4 loop
        if substr(n, a + 1, 2) = '15' then
          n := '9' || left(n, a) || substr(n, a + 3);
          exit;
        end if;
      end loop;
    end if;
    e := cc || n;
  elsif left(d, length(cc)) = cc and length(d) - length(cc) between nsn_min and nsn_max + 1
        and length(d) > nsn_max then
    e := d;           -- already international, typed without '+' (the form WhatsApp itself uses)
  else
    e := cc || d;
  end if;

  -- Country quirks, so that WhatsApp's wa_id and the E.164 form meet.
  if e ~ '^521[0-9]{10}$' then
    e := '52' || substr(e, 4);                              -- Mexico: legacy mobile '1' after 52
  elsif e ~ '^55[1-9][0-9][6-9][0-9]{7}$' then
    e := left(e, 4) || '9' || substr(e, 5);                 -- Brazil: mobile missing its ninth digit
  end if;

  if e !~ '^[1-9][0-9]{7,14}$' then
    return null;
  end if;
  return e;
end
$$;

comment on function private.normalize_phone(text, text) is
  'Phone number as typed (any common format) -> E.164 digits without +, as WhatsApp sends wa_id. '
  'National numbers are read in default_country (ISO alpha-2). Null for anything that is not a phone number.';

grant execute on function private.normalize_phone(text, text) to service_role;
