<?php

namespace App;

use Symfony\Bundle\FrameworkBundle\Kernel\MicroKernelTrait;
use Symfony\Component\HttpKernel\Kernel as BaseKernel;

/**
 * FrameworkBundle + TwigBundle (config/bundles.php), config from config/packages/*.yaml and
 * config/services.yaml, routes from config/routes.yaml (MicroKernelTrait's defaults).
 */
class Kernel extends BaseKernel
{
    use MicroKernelTrait;

    // The release folder itself, not found by looking for composer.json.
    public function getProjectDir(): string
    {
        return \dirname(__DIR__);
    }
}
