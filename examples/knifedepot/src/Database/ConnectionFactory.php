<?php

namespace App\Database;

use Doctrine\DBAL\Connection;
use Doctrine\DBAL\DriverManager;
use Doctrine\DBAL\Tools\DsnParser;

/**
 * Makes the app's Doctrine DBAL connection from DATABASE_URL
 * (postgresql://USER:PASS@HOST:PORT/DBNAME, query parameters such as serverVersion=15 and
 * charset=utf8 allowed). Registered in config/services.yaml as the Connection service.
 */
final class ConnectionFactory
{
    public static function fromUrl(string $databaseUrl): Connection
    {
        $params = (new DsnParser([
            'postgresql' => 'pdo_pgsql',
            'postgres' => 'pdo_pgsql',
            'pgsql' => 'pdo_pgsql',
        ]))->parse($databaseUrl);

        // Fail fast (health check answers 503) rather than hang when the server is unreachable.
        $params['driverOptions'] = ($params['driverOptions'] ?? []) + [\PDO::ATTR_TIMEOUT => 5];

        return DriverManager::getConnection($params);
    }
}
