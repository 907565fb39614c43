-- sha256: the SHA-256 of the archive (64 lowercase hex digits), as computed while it streamed to
-- the store and verified there. Set only by the move to success; null for rows finished before
-- this column existed, for failed rows, and for writers that do not report it.
--
-- Why a column and not S3 object metadata: metadata is fixed when the multipart upload is created,
-- before the archive (and so its hash) exists, and changing it afterwards takes a full server-side
-- copy of the object. Object tags would need s3:PutObjectTagging, which Cloudflare R2 does not offer.

alter table public.backup_history
  add column if not exists sha256 text;

alter table public.backup_history
  drop constraint if exists backup_history_sha256_check;
alter table public.backup_history
  add constraint backup_history_sha256_check check (
    sha256 is null or (sha256 ~ '^[0-9a-f]{64}$' and status = 'success')
  );

-- 008's guard, extended: a terminal row never changes, and sha256 only arrives with the move to success.
create or replace function public.backup_history_guard_transition()
returns trigger
language plpgsql
as $$
begin
  if old.status <> 'in_progress' then
    raise exception 'backup_history row % is already %, it cannot change', old.id, old.status
      using errcode = 'check_violation';
  end if;
  if new.sha256 is not null and new.status <> 'success' then
    raise exception 'backup_history row %: sha256 is only set when the row moves to success', old.id
      using errcode = 'check_violation';
  end if;
  return new;
end;
$$;
