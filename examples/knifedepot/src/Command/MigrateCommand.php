<?php

namespace App\Command;

use Doctrine\DBAL\Connection;
use Symfony\Component\Console\Attribute\AsCommand;
use Symfony\Component\Console\Command\Command;
use Symfony\Component\Console\Input\InputInterface;
use Symfony\Component\Console\Output\OutputInterface;

/**
 * `php bin/console app:migrate`: the app's own migrations (DoctrineMigrationsBundle is not
 * packaged by Debian).
 *
 * Applies migrations/NNN_name.sql in order of NNN, each once: applied versions are recorded
 * in `schema_versions`. Every run, even one with nothing to apply, adds a row to
 * `migration_runs` (host = gethostname(), applied = the versions it applied, comma-separated,
 * '' if none). A run is one transaction (PostgreSQL's DDL is transactional): a failing
 * migration rolls back the whole run, its migration_runs row included, and the command
 * fails. Runs on several hosts at once are serialized by an advisory lock. Both bookkeeping
 * tables are created by the first run.
 */
#[AsCommand(name: 'app:migrate', description: 'Apply the new migrations/NNN_name.sql files and record the run')]
final class MigrateCommand extends Command
{
    private const LOCK_KEY = 7_305_221_042; // pg_advisory_xact_lock key: "knifedepot migrations"
    private const FILE_PATTERN = '/^(\d{3})_([A-Za-z0-9_]+)\.sql$/';

    public function __construct(private Connection $db, private string $migrationsDir)
    {
        parent::__construct();
    }

    protected function execute(InputInterface $input, OutputInterface $output): int
    {
        $migrations = $this->migrations();
        $host = gethostname() ?: 'unknown';

        $this->db->beginTransaction();
        try {
            $this->db->fetchOne('SELECT pg_advisory_xact_lock('.self::LOCK_KEY.')');
            $this->db->executeStatement('CREATE TABLE IF NOT EXISTS schema_versions (
                version text PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )');
            $this->db->executeStatement('CREATE TABLE IF NOT EXISTS migration_runs (
                id serial PRIMARY KEY,
                ran_at timestamptz NOT NULL DEFAULT now(),
                host text,
                applied text
            )');

            $done = array_flip($this->db->fetchFirstColumn('SELECT version FROM schema_versions'));
            $applied = [];
            foreach ($migrations as $version => $file) {
                if (isset($done[$version])) {
                    continue;
                }
                $sql = file_get_contents($file);
                if (false === $sql) {
                    throw new \RuntimeException("cannot read $file");
                }
                if ('' !== trim($sql)) {
                    $this->db->executeStatement($sql);
                }
                $this->db->insert('schema_versions', ['version' => $version, 'name' => basename($file)]);
                $applied[] = $version;
                $output->writeln(sprintf('applied %s', basename($file)));
            }

            $this->db->insert('migration_runs', ['host' => $host, 'applied' => implode(',', $applied)]);
            $this->db->commit();
        } catch (\Throwable $e) {
            if ($this->db->isTransactionActive()) {
                $this->db->rollBack();
            }
            $output->writeln(sprintf('<error>app:migrate failed, nothing applied: %s</error>', $e->getMessage()));

            return Command::FAILURE;
        }

        $output->writeln($applied
            ? sprintf('%s: applied %d migration(s): %s', $host, \count($applied), implode(',', $applied))
            : sprintf('%s: nothing to apply (%d migration(s), all applied)', $host, \count($migrations)));

        return Command::SUCCESS;
    }

    /** @return array<string, string> version => file, in version order */
    private function migrations(): array
    {
        $migrations = [];
        foreach (scandir($this->migrationsDir) ?: [] as $name) {
            if (!str_ends_with($name, '.sql')) {
                continue;
            }
            if (!preg_match(self::FILE_PATTERN, $name, $m)) {
                throw new \RuntimeException("migrations/$name: not named NNN_name.sql");
            }
            if (isset($migrations[$m[1]])) {
                throw new \RuntimeException("two migrations numbered {$m[1]}: {$migrations[$m[1]]} and $name");
            }
            $migrations[$m[1]] = $this->migrationsDir.'/'.$name;
        }
        ksort($migrations, \SORT_STRING);

        return $migrations;
    }
}
