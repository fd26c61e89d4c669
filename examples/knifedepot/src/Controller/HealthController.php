<?php

namespace App\Controller;

use Doctrine\DBAL\Connection;
use Psr\Log\LoggerInterface;
use Symfony\Component\HttpFoundation\Response;

/** GET /health: `ok` when the database answers `SELECT 1`, 503 otherwise. */
final class HealthController
{
    public function __construct(private Connection $db, private LoggerInterface $logger)
    {
    }

    public function __invoke(): Response
    {
        try {
            $this->db->fetchOne('SELECT 1');
            $response = new Response('ok', Response::HTTP_OK);
        } catch (\Throwable $e) {
            $this->logger->error('health: the database does not answer: {message}', ['message' => $e->getMessage()]);
            $response = new Response('database unavailable', Response::HTTP_SERVICE_UNAVAILABLE);
        }
        $response->headers->set('Content-Type', 'text/plain; charset=UTF-8');
        $response->headers->set('Cache-Control', 'no-store');

        return $response;
    }
}
