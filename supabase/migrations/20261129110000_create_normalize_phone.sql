-- Why: one person must never be split in two by phone formats. Landlords type numbers as
-- "+44 7700 900123", "0044 ...", "07700-900123"; WhatsApp sends wa_id as E.164 digits without
-- '+', with country quirks (Mexico's legacy "521" mobile prefix, Brazilian mobiles that lost
-- their ninth digit). private.normalize_phone() maps all of them to one key: E.164 digits,
-- no '+', the form WhatsApp uses in `from` / `wa_id`. Garbage becomes null, never a guess.
--
-- Checked against the phonenumbers library (tests/test_normalize_phone.py) for GB, US, BR, MX,
-- AR, IN and DE and the example numbers of every supported country. Readings it relies on:
--   * '+', '00' (and '011' in US/CA, '0011' in AU) start an international number.
--   * A national number starts with the default country's trunk prefix ('0'; '1' in US/CA),
--     or is the bare national significant number ("7700 900123" in GB).
--   * Digits without '+' that start with the calling code are international when a national
--     number could not look like that: in trunk-prefix countries (their national numbers start
--     with the trunk), elsewhere when longer than the longest national number. Known limit:
--     in Italy (no trunk prefix, 6 to 11 digits) "39" + up to 9 digits stays national.
--   * "(0)" is the optional trunk prefix ("+44 (0)7700 900123") and is dropped, and so is a
--     trunk typed after the default country's code ("+44 07700 900123").
--   * Argentina: mobiles written with '15' after the area code ("011 15-2345-6789",
--     "+54 11 15 2345 6789") become 54 9 area subscriber. Brazil: a long-distance carrier code
--     after the trunk 0 ("0 21 (11) 96123-4567", "(0xx11) 96123-4567") is dropped.
--   * A national number must have a length the country uses, or it is null. Known limit: one
--     written without its trunk 0 whose area code begins with the calling code (German Emden
--     04921 as "4921 ...") reads as international; people there write the 0.
--   * An unsupported default_country raises 22023 whatever raw is: it is a configuration error.

create function private.normalize_phone(raw text, default_country text default 'GB')
returns text
language plpgsql
immutable
parallel safe
security invoker
set search_path = ''
as $$
declare
  country text := upper(coalesce(nullif(btrim(default_country), ''), 'GB'));
  s text;
  d text;
  intl boolean := false;
  cc text;            -- the default country's calling code
  trunk text;         -- its national (trunk) prefix, null where numbers keep their leading digit
  idd text;           -- its international call prefix besides '00'
  nsn_min int;        -- shortest and longest national significant number of its fixed
  nsn_max int;        -- lines and mobiles (within E.164's 15 digits)
  n text;             -- national significant number
  e text;             -- result
begin
  select v.cc, v.trunk, v.idd, v.nsn_min, v.nsn_max into cc, trunk, idd, nsn_min, nsn_max
  from (values
    ('GB', '44', '0', null, 9, 10), ('US', '1', '1', '011', 10, 10), ('CA', '1', '1', '011', 10, 10),
    ('BR', '55', '0', null, 10, 11), ('MX', '52', null, null, 10, 10), ('AR', '54', '0', null, 10, 11),
    ('IN', '91', '0', null, 10, 10), ('DE', '49', '0', null, 6, 13), ('FR', '33', '0', null, 9, 9),
    ('ES', '34', null, null, 9, 9), ('IT', '39', null, null, 6, 11), ('IE', '353', '0', null, 7, 10),
    ('NL', '31', '0', null, 9, 11), ('PT', '351', null, null, 9, 9), ('AU', '61', '0', '0011', 9, 9),
    ('ZA', '27', '0', null, 6, 9), ('NG', '234', '0', null, 8, 10), ('PL', '48', null, null, 7, 9),
    ('SE', '46', '0', null, 7, 9)
  ) as v (iso2, cc, trunk, idd, nsn_min, nsn_max)
  where v.iso2 = country;
  if cc is null then
    raise exception using errcode = '22023',
      message = format('unsupported default country %L', default_country), detail = 'invalid_value',
      hint = 'use an ISO 3166-1 alpha-2 code such as GB, US, BR, MX, AR, IN or DE';
  end if;

  -- Copy-paste spacing and dashes (no-break spaces, en dashes, ...) become plain ones.
  s := btrim(translate(raw, U&'\00A0\2007\202F\2010\2011\2012\2013\2014\2212', '   ------'), E' \t\r\n');
  if s is null or s = '' then
    return null;
  end if;
  if cc = '55' then
    s := regexp_replace(s, '0\s*[xX]{2}', '0');             -- Brazil: "(0xx11)", any carrier
  end if;
  -- Only what people put in phone numbers: digits, one leading '+', spaces, dots, dashes, brackets, slashes.
  if s !~ '^\+?[0-9 ()./\-]+$' or s ~ '^\+.*\+' then
    return null;
  end if;
  if strpos(s, '(') > 0 then
    s := regexp_replace(s, '\(\s*0\s*\)', ' ', 'g');   -- "+44 (0)7700 900123"
  end if;

  d := regexp_replace(s, '[^0-9]', '', 'g');
  if left(s, 1) = '+' then
    intl := true;
  elsif idd is not null and left(d, length(idd)) = idd then
    intl := true; d := substr(d, length(idd) + 1);
  elsif left(d, 2) = '00' then
    intl := true; d := substr(d, 3);
  end if;

  if intl then
    e := d;
  elsif trunk is not null and left(d, length(trunk)) = trunk
        and length(d) - length(trunk) between nsn_min and nsn_max + (cc = '54')::int then
    e := cc || substr(d, length(trunk) + 1);
  elsif cc = '55' and d ~ '^0(1[245]|2[1-35]|31|4[13]|[56]5|99)[1-9]{2}[0-9]{8,9}$' then
    e := cc || substr(d, 4);      -- Brazil: 0 + long-distance carrier code + area + number
  elsif left(d, length(cc)) = cc and length(d) - length(cc) between nsn_min and nsn_max + 1
        and (trunk is not null or length(d) > nsn_max) then
    e := d;           -- already international, typed without '+' (the form WhatsApp itself uses)
  elsif length(d) between nsn_min and nsn_max + (cc = '54')::int then
    e := cc || d;     -- national significant number without trunk prefix ("7700 900123"; AR may add '15')
  else
    return null;
  end if;

  if left(e, length(cc) + length(trunk)) = cc || trunk then
    e := cc || substr(e, length(cc) + length(trunk) + 1);     -- "+44 07700 900123"
  end if;

  -- Country quirks, so that WhatsApp's wa_id and the E.164 form meet.
  if e ~ '^521[0-9]{10}$' then
    e := '52' || substr(e, 4);                              -- Mexico: legacy mobile '1' after 52
  elsif e ~ '^55[1-9][0-9][6-9][0-9]{7}$' then
    e := left(e, 4) || '9' || substr(e, 5);                 -- Brazil: mobile missing its ninth digit
  elsif e ~ '^549?[1-3][0-9]{11}$' then
    -- Argentina: area (2 to 4 digits, starting 1-3) + '15' + subscriber is a mobile: 54 9 area subscriber.
    n := substr(e, case when length(e) = 15 then 4 else 3 end);
    for a in 2..4 loop
      if substr(n, a + 1, 2) = '15' then
        e := '549' || left(n, a) || substr(n, a + 3);
        exit;
      end if;
    end loop;
  end if;

  -- E.164 has 8 to 15 digits here, and a number of the default country one of its lengths.
  if e !~ '^[1-9][0-9]{7,14}$'
     or (left(e, length(cc)) = cc and length(e) - length(cc) not between nsn_min and nsn_max) then
    return null;
  end if;
  return e;
end
$$;

comment on function private.normalize_phone(text, text) is
  'Phone number as typed (any common format) -> E.164 digits without +, as WhatsApp sends wa_id. '
  'National numbers are read in default_country (ISO alpha-2). Null for anything that is not a phone number; '
  '22023 for an unsupported default_country.';

-- Called by the tenants trigger, which runs as whoever writes the tenant (security invoker).
grant execute on function private.normalize_phone(text, text) to authenticated, service_role;
