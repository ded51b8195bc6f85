-- private.normalize_phone(): hand-picked readings, one per way of writing a number that the
-- routing depends on. The exhaustive check against the phonenumbers library is in
-- tests/test_normalize_phone.py.
begin;
select plan(20);

-- The function's contract.
select volatility_is('private', 'normalize_phone', array['text', 'text'], 'immutable',
  'normalize_phone is immutable');

-- GB, the default country: every common way of writing one mobile.
select is(private.normalize_phone('+44 7700 900123'), '447700900123', 'GB: international with spaces');
select is(private.normalize_phone('0044 (7700) 900.789', 'GB'), '447700900789', 'GB: 00 prefix, brackets and a dot');
select is(private.normalize_phone('07700-900123', 'GB'), '447700900123', 'GB: national with the trunk 0');
select is(private.normalize_phone('447700900123', 'GB'), '447700900123', 'GB: the wa_id digits themselves');
select is(private.normalize_phone('+44 (0)7700 900123', 'GB'), '447700900123', 'GB: optional trunk "(0)" after +44');

-- US: national, with the trunk 1, and from abroad.
select is(private.normalize_phone('(201) 555-0123', 'US'), '12015550123', 'US: national');
select is(private.normalize_phone('1-201-555-0123', 'US'), '12015550123', 'US: national with the trunk 1');
select is(private.normalize_phone('+1 201-555-0123', 'GB'), '12015550123', 'US number read in GB');

-- WhatsApp quirks meet the E.164 key.
select is(private.normalize_phone('+5215512345678', 'GB'), '525512345678', 'MX: legacy 521 wa_id -> 52');
select is(private.normalize_phone('5215512345678', 'MX'), private.normalize_phone('55 1234 5678', 'MX'),
  'MX: wa_id 521 and the national number are one key');
select is(private.normalize_phone('+551187654321', 'GB'), '5511987654321', 'BR: wa_id without the ninth digit');
select is(private.normalize_phone('(11) 98765-4321', 'BR'), '5511987654321', 'BR: national mobile');
select is(private.normalize_phone('+55 11 2345-6789', 'GB'), '551123456789', 'BR: landline keeps 8 digits');

-- AR mobiles: 0 + area + 15 + subscriber is 54 9 area subscriber.
select is(private.normalize_phone('011 15-2345-6789', 'AR'), '5491123456789', 'AR: national mobile with 15');
select is(private.normalize_phone('+54 9 11 2345-6789', 'GB'), '5491123456789', 'AR: international mobile');

-- DE: national, and the wa_id digits (which once became 49 + 49...).
select is(private.normalize_phone('030 123456', 'DE'), '4930123456', 'DE: national Berlin number');
select is(private.normalize_phone('4915123456789', 'DE'), '4915123456789', 'DE: the wa_id digits themselves');

-- Garbage is null, never a guess.
select is_empty($$
  select raw from unnest(array[
    'call me', '', '   ', '+', '++447700900123', '+44 7700 900123 ext 12', '07700 900123 x12',
    '12345', '+1234567890123456', '07700 9001234', '+44 7700 900123 / +44 7700 900124'
  ]) as raw
  where private.normalize_phone(raw, 'GB') is not null
$$, 'garbage: letters, empty, +, two +, ext, too short, too long -> null');

-- An unknown default country is a configuration error, not a null.
select throws_ok($$ select private.normalize_phone('07700 900123', 'UK') $$, '22023', null,
  'unsupported default country -> 22023');

select * from finish();
rollback;
