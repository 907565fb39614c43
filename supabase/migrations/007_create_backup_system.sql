-- backup_history: one row per backup, written by the app (trigger) and finalized by the
-- supabase-s3-backup action (or the update-backup edge function). A row moves only
-- in_progress -> success | failed; see 008 for the guards that make other moves impossible.

create extension if not exists pgcrypto;

create table if not exists public.backup_history (
  id              uuid primary key default gen_random_uuid(),
  dispatch_id     uuid unique,
  status          text not null default 'in_progress'
                  constraint backup_history_status_check
                  check (status in ('in_progress', 'success', 'failed')),
  s3_key          text,
  size_bytes      bigint,
  workflow_run_id text,
  error_text      text,
  created_at      timestamptz not null default now()
);

comment on table public.backup_history is
  'One row per backup. Finalized by the supabase-s3-backup action: in_progress -> success | failed.';

-- The sweep and the app look for unfinished rows; keep that cheap as history grows.
create index if not exists backup_history_in_progress_idx
  on public.backup_history (created_at)
  where status = 'in_progress';

-- RLS on: only roles with a policy see or touch rows. service_role bypasses RLS on
-- Supabase; the explicit policy keeps the intent readable and survives a role change.
alter table public.backup_history enable row level security;

drop policy if exists "service role manages backups" on public.backup_history;
create policy "service role manages backups"
  on public.backup_history for all
  to service_role
  using (true)
  with check (true);

-- The app's signed-in users poll their backups' status; they never write.
drop policy if exists "signed-in users read backups" on public.backup_history;
create policy "signed-in users read backups"
  on public.backup_history for select
  to authenticated
  using (true);
